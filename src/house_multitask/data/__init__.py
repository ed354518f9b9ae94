"""Reading, cleaning, labelling and splitting the raw Kaggle table."""
